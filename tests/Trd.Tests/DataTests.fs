module Trd.Tests.DataTests

open Expecto

[<Tests>]
let tests = testList "Data" []
