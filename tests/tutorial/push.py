import ollama

ollama.push('user/llama3.2')
