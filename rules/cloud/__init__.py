"""Cloud-sync folders: provider signatures (data), detection and decision, all pure.

The daemon gathers facts about homes and folders (HomeFacts, FolderFacts); this package says
which folders are sync folders (Found) and whether the rules allow them (CloudVerdict).
The public names are exported from `rules`; this package imports nothing on its own so that
`rules.model` can use its parts without an import cycle.
"""
