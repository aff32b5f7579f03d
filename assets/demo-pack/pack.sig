format = "countersign-signature/1"
domain = "countersign/policy-pack/v1"
key_id = "3644458f8627a45f"
signature = "17a81175131338244a6e934c67c86ae5335efa5d140d30002799fa8aa64fdbe98535d67487d7547e4065da50703dd32033bcbf6106081de55c38a567f2420a01"
