format = "countersign-signature/1"
domain = "countersign/policy-pack/v1"
key_id = "6095532d362391c0"
signature = "16acb2458404b0e04301a1a12c9bf9299244fc459495dcf58ffd3cc329b44408e7d48ec2c6465de34d2a56d9a1e94cb16556356955de25471f3714f818f9dc02"
