// placeholder: replaced by the StepRunWire implementation
