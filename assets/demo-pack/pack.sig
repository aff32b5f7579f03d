format = "countersign-signature/1"
domain = "countersign/policy-pack/v1"
key_id = "de377ff5c2cb3a78"
signature = "e5ebddb95bd33e182d1aac16a1b22329f19594f106161e520d438fb6033174181599f1a20d488541ab7bfcd2ccebfe27121581425d3c1f13b599783c9016620a"
