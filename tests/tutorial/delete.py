import ollama

ollama.delete('llama3.2')
