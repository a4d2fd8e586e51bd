"""The certificate rules, each written once.

``policy`` (refuses a CSR at issuance), ``check`` (before an upload) and ``audit`` (the inventory) call the same
functions here. A rule returns a neutral ``Breach`` (which rule, and what is wrong); each command decides how
serious that is for its job, within the severities ``catalogue.CATALOGUE`` lists (docs/rules.md is that table).
"""
