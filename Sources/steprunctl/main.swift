print("steprunctl: placeholder")
