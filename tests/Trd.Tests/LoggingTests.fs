module Trd.Tests.LoggingTests

open Expecto

[<Tests>]
let tests = testList "Logging" []
