// The API's documents are JSON values; users of the API module get the type with it.
@_exported public import MyceliumJSON
