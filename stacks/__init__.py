"""The shared estate's Pulumi program (azure-native).

Stack `shared` is the consortium hub; every other stack is the council of that name in `inventories/`.
`stacks.program.run(estate, stack)` declares a stack's resources; `stacks/__main__.py` is the thin entry the
Pulumi CLI runs, and `estate.plan` runs the same program in process under the SDK's mock runtime.
"""
