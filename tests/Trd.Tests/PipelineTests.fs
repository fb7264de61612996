module Trd.Tests.PipelineTests

open Expecto

[<Tests>]
let tests = testList "Pipeline" []
