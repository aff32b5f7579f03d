format = "countersign-signature/1"
domain = "countersign/policy-pack/v1"
key_id = "9fad6139085c426d"
signature = "5592b7c692589430a94c2f4fbddef1ecd3490df24196c5b2c52c922f9a5d41b7813abd4565b9e0e67a12af936b0e21c431976b490fd4ce3389d1bae1afd00f02"
