NAME = "pthmod from the .pth directory"
