format = "countersign-signature/1"
domain = "countersign/policy-pack/v1"
key_id = "8239dc1f0c3185b5"
signature = "d5caf8fbf889b5ed6612aa3dcdc53493f5c2d2f01d76231a17a064fd1d5b4b989f677576709a13299c66c3c8fbafed94b56c2f5183f9d2553a006bc836deeb03"
