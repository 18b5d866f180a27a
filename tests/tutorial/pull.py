import ollama

ollama.pull('llama3.2')
