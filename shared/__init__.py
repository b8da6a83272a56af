"""The app's core: settings, storage, the Azure DevOps client and the sync rules.

Nothing in this package imports `azure.functions`; the trigger adapters in `functions/` do that.
"""
