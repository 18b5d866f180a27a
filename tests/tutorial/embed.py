import ollama

ollama.embed(model='llama3.2', input='The sky is blue because of rayleigh scattering')
