module Trd.Tests.CorpusAnalysisTests

open Expecto

[<Tests>]
let tests = testList "CorpusAnalysis" []
