module Trd.Tests.ReductionTests
