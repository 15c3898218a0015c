// placeholder until the repository lands
