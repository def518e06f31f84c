print("hello from the build")
