"""The pure core of Studio Brain: values, rules, state machines and hashing. No I/O, no clock."""
