format = "countersign-signature/1"
domain = "countersign/policy-pack/v1"
key_id = "b44c27b5c0b13b83"
signature = "df8c94d460eb140d87f065099a50f3ef6ea0d81840fde9b1a2e153292c6ebc6c0ef1a9b10a84c153c06e6bc1abe27a3af5f991ce78718942c62a0d6e6cdfc607"
