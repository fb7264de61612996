namespace Trd.Core

// Placeholder: filled in by the issue-4 work.
module internal CorpusAnalysisPlaceholder =
    let internal unused = ()
