print("steprun-bench: placeholder")
