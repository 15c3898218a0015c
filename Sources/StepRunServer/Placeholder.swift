// placeholder: replaced by the StepRunServer implementation
