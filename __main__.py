"""etl-platform: the shared foundation plus the architectures the stack config selects.

Load the validated settings (config mistakes stop here, before any resource), build the foundation under one explicit
aws provider, build each selected architecture from the registry, publish the dashboard, export what operators need.
"""

import pulumi

from components.program import build_stack

outputs = build_stack()
for key, value in outputs.items():
    pulumi.export(key, value)
