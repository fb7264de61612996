namespace Trd.Core

// Placeholder: filled in by the issue-4 work.
module internal SchedulePlaceholder =
    let internal unused = ()
