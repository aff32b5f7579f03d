format = "countersign-signature/1"
domain = "countersign/policy-pack/v1"
key_id = "636eac273b1c4eda"
signature = "971637c16bb2709672c3390ddcef71c063637e1630e18de8b565193949abddc2ef128f214bd9a38a0921b98e53309e03ebf3cdbb2c77ebcb667eb41eb9961106"
