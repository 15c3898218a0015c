print("steprund placeholder")
