module Trd.Tests.TrainerTests

open Expecto

[<Tests>]
let tests = testList "Trainer" []
