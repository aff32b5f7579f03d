format = "countersign-signature/1"
domain = "countersign/policy-pack/v1"
key_id = "8f5750cf9abcec18"
signature = "f8e7dfc7ec0ff333dee342dc9e06be02d388e4e8b058db5b36f02c5ba43513e1937617358cdbde053dd319404bd85fd32dc2ebdb477985c058f25ca63c295901"
