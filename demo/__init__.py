"""`python -m demo` (`make demo`): a guided walkthrough of the app for a newcomer.

It starts an in-memory Azurite, the simulated Azure DevOps from devtools/fakes and the app in the local Functions
host, then walks one work item change from Azure DevOps to the tracked issue, printing every request.
"""
