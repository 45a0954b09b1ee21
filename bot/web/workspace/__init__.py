"""The compliance workspace: scripts, blocks, language packs and the rule set edited in
the browser, checked, previewed, evaluated on personas, compared, and published under
four eyes.

* :mod:`.documents` — the documents and their versions (database rows; the packaged
  files are version 0).
* :mod:`.checks` — lint and the sandbox screen (template-injection attempts are refused).
* :mod:`.preview`, :mod:`.evaluation`, :mod:`.diff` — what a version says, how it does on
  the personas, what changed.
* :mod:`.running` — which templates the bot runs (source, digest, workers' sets).
* :mod:`.approval` — draft -> pending -> published (by a second person) -> retired;
  rejection and roll-back.

How a published version reaches the bot: :mod:`bot.templates_store`.
"""
