"""LightningDataModules; every one works offline."""

from lightreg.data.arrays import ArrayDataModule
from lightreg.data.csv import CSVDataModule, read_csv_table
from lightreg.data.images import ImageDataModule
from lightreg.data.loader import TensorBatches
from lightreg.data.sklearn_sets import SklearnDataModule
from lightreg.data.synthetic import SyntheticDataModule, make_synthetic
from lightreg.data.tabular import TabularData, TabularDataModule

__all__ = [
    "ArrayDataModule",
    "CSVDataModule",
    "ImageDataModule",
    "SklearnDataModule",
    "SyntheticDataModule",
    "TabularData",
    "TabularDataModule",
    "TensorBatches",
    "make_synthetic",
    "read_csv_table",
]
