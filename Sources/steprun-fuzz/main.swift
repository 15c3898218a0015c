print("steprun-fuzz: placeholder")
