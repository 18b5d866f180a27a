import ollama

ollama.create(model='example', from_='llama3.2', system="You are Mario from Super Mario Bros.")
