// placeholder: replaced by the StepRunClient implementation
