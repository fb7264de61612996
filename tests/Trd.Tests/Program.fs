module Trd.Tests.Program

open Expecto
open Expecto.Impl

/// After Expecto's own summary, the one line CI reads: "N passed, N failed[, N skipped]".
let private summaryLine (summary: TestRunSummary) =
    let failed = summary.failed.Length + summary.errored.Length
    let skipped = if summary.ignored.IsEmpty then "" else $", {summary.ignored.Length} skipped"
    // On a line of its own: Expecto's last output may leave the cursor mid-line.
    printfn "\n%d passed, %d failed%s" summary.passed.Length failed skipped

[<EntryPoint>]
let main argv =
    let defaults = [ CLIArguments.No_Spinner; CLIArguments.Append_Summary_Handler(SummaryHandler summaryLine) ]
    runTestsInAssemblyWithCLIArgs defaults argv
