import torch  # no near-miss: its one DataParallel call fires
import torch.nn.parallel as par

model = par.DataParallel(torch.nn.Linear(8, 8).cuda())  # expect: dataparallel
