module corral.test/gocodec

go 1.19
