format = "countersign-signature/1"
domain = "countersign/policy-pack/v1"
key_id = "37c60ef91552d90d"
signature = "595e63fc72368b41512b7a11a85497f3ed35427b5e885124b2af1a6cc2154b61cfe27d46c76df6391b314e90b429ef5ea6eb84e7f4198ab7a220a33d42fa0509"
