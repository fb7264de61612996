module Trd.Tests.ScheduleTests

open Expecto

[<Tests>]
let tests = testList "Schedule" []
