"""The only code that runs DCMTK: pure argv builders, one runner, pure readers of what the tools say."""
