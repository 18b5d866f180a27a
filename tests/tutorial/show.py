import ollama

ollama.show('llama3.2')
