format = "countersign-signature/1"
domain = "countersign/policy-pack/v1"
key_id = "a863dfc736763e8e"
signature = "20c0c12e9c01db3931f97c4af2825716f95a884ad2a30f6fd8546b316dd482ac025e79765a4e5985911daf96a1d9d5e304e5d8a9c635244c0271da72a72f1a0c"
