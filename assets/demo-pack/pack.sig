format = "countersign-signature/1"
domain = "countersign/policy-pack/v1"
key_id = "c39f8e9648062b13"
signature = "f7b4cc2dd5e3840db81d1653e9c078ddf077d9742394b5ee7910f3e54bf2e60414fefb7283ab55c9abac4a4c054141c6fd31e6f9d72d9fd46790567eaa4dfb01"
