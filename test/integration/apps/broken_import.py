import module_that_does_not_exist_anywhere  # noqa: F401  (an import error inside the app)

app = None
