import ollama

ollama.copy('llama3.2', 'user/llama3.2')
