module Trd.Tests.DivergenceTests
