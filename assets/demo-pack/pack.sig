format = "countersign-signature/1"
domain = "countersign/policy-pack/v1"
key_id = "24d66a3e878039c6"
signature = "857e0851272d030a47e3d75e940ccfacfb5b36981f29347e299051fb15518eda00383ad6ae968e634c702595c1ba4df3cacd57f3f0e1bfd6aa0314556c05a206"
