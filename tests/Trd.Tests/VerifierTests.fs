module Trd.Tests.VerifierTests

open Expecto

[<Tests>]
let tests = testList "Verifier" []
